# The base image of `python -m sslkit.assign grade --container`: this repository at /opt/sslkit,
# which otter's grading image pip-installs (with torch) into its environment.
# Build it once, from the repository's root:
#   docker build -t sslkit-grader -f sslkit/assign/grader.Dockerfile .
FROM ubuntu:22.04
COPY pyproject.toml README.md /opt/sslkit/
COPY sslkit /opt/sslkit/sslkit
COPY labdata /opt/sslkit/labdata
