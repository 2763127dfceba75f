"""The data stager: a program of its own, run in init containers (stage-in) and release
containers (stage-out) of the ``eb-stager`` image (``hack/build-stager-image.sh``), never
imported by the broker's layers.

    eb-stager [in] http URL DEST_DIR
    eb-stager [in] s3 [--addressing-style path|virtual|auto] ENDPOINT BUCKET KEY_OR_PREFIX DEST_DIR
    eb-stager [in] rucio HOST SCOPE:NAME DEST_DIR
    eb-stager out s3 [--addressing-style ...] ENDPOINT BUCKET PREFIX SRC_DIR
    eb-stager out http URL SRC_DIR
    eb-stager out webdav URL SRC_DIR

The protocols are maintained libraries' (boto3 for S3, httpx for HTTP(S), webdav4 for WebDAV,
rucio-clients for Rucio); this package maps a request's location onto them, writes files
atomically (``NAME.part``, renamed when complete), checks what arrived, and reports. Credentials
come only from the environment, which the operator fills from the platform's Secrets.

On success it prints one line, ``staged N files, B bytes in S s (R MB/s)`` (``staged out ...``
for uploads). On failure it exits 1 with one line naming the location and the cause, on stderr
and in the container's termination message, which the operator copies into the session's
FAILED message. Module map: :mod:`.cli` (arguments, summary), :mod:`.s3`, :mod:`.web` (HTTP and
WebDAV), :mod:`.rucio_dids`, :mod:`.common` (errors, paths, tally).
"""
