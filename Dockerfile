# The Chronolog image: the `chronolog` command and nothing else. docker-compose.yml runs
# each role (api, scheduler, projector, worker, setup) from it as a subcommand.
FROM python:3.11-slim-bookworm

# setpriv (util-linux) starts every job with PR_SET_PDEATHSIG, so a killed worker takes
# its jobs with it (worker/orphans.py). Debian marks util-linux essential; it is named
# here because the worker relies on it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends util-linux \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY . /tmp/chronolog-src
RUN pip install /tmp/chronolog-src && rm -rf /tmp/chronolog-src

# Job code: workers import python jobs from CHRONOLOG_APP_DIR (/app) first. Build your
# worker image FROM this one with your modules (and their requirements) in /app:
#     FROM chronolog:0.1.0
#     COPY requirements.txt /app/
#     RUN pip install -r /app/requirements.txt
#     COPY reports.py /app/
# /app stays owned by root, so job code cannot rewrite itself.
RUN mkdir /app
ENV CHRONOLOG_APP_DIR=/app

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin chronolog
USER chronolog
# Embedded files (the projector's lock) go to ./.chronolog, in the user's home.
WORKDIR /home/chronolog

EXPOSE 8000
ENTRYPOINT ["chronolog"]
CMD ["--help"]
