# One image for the operator and the REST API. Where no Docker engine or registry is available
# (as on the project's own machines), hack/build-image.sh builds an equivalent image from a
# locally assembled Debian root filesystem.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --no-compile --target /opt/eb/lib . \
 && rm -rf /opt/eb/lib/bin

FROM python:3.11-slim-bookworm
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin eb
COPY --from=build /opt/eb/lib /opt/eb/lib
ENV PYTHONPATH=/opt/eb/lib PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 1000:1000
EXPOSE 8080
ENTRYPOINT ["python3", "-m", "eb_operator.cli"]
CMD ["operator"]
