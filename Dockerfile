# albprobe as a Locust image: Locust's own image (same Locust version as pyproject.toml pins) with
# albprobe installed and its locustfile as the default. Run it as you would run locustio/locust:
#   docker build -t albprobe-locust .
#   docker run albprobe-locust --worker --master-host <master>            # a worker
#   docker run -p 8089:8089 -p 5557:5557 -v $PWD/runs:/home/locust/runs \
#     -v $PWD/albprobe.toml:/config/albprobe.toml albprobe-locust --master --headless \
#     --host https://api.example.com --albprobe-config /config/albprobe.toml \
#     --albprobe-processes 4 --expect-workers 4                          # the master
# See docs/distributed.md (Kubernetes example, when one master is enough).
FROM locustio/locust:2.47.0

USER root
COPY pyproject.toml README.md /opt/albprobe/
COPY albprobe /opt/albprobe/albprobe
COPY core /opt/albprobe/core
COPY probes /opt/albprobe/probes
COPY analysis /opt/albprobe/analysis
COPY testbed /opt/albprobe/testbed
COPY locustfiles /opt/albprobe/locustfiles
# A regular (not editable) install: the image needs no source tree at run time, but the locustfile
# stays at a fixed path for LOCUST_LOCUSTFILE.
RUN pip install --no-cache-dir /opt/albprobe \
    && chown -R locust /opt/albprobe
USER locust
WORKDIR /home/locust

# Locust reads LOCUST_* environment variables as its options: `-f` need not be given, and a
# `-f` on the command line still overrides it. The entrypoint stays Locust's own ("locust").
ENV LOCUST_LOCUSTFILE=/opt/albprobe/locustfiles/browser.py \
    PYTHONUNBUFFERED=1
EXPOSE 8089 5557
