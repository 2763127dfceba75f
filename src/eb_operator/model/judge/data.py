"""Data: resources the platform can reach and stage (HTTP(S), its S3 endpoints, Rucio, IVOA)."""

from __future__ import annotations

from eb_operator.model.common import MessageType
from eb_operator.model.errors import Path
from eb_operator.model.judge.findings import Findings, is_http
from eb_operator.model.platform import endpoint_key
from eb_operator.model.resources import (
    IvoaDataResource,
    RucioDataResource,
    S3DataResource,
    SimpleDataResource,
    SkaoDataResource,
)
from eb_operator.model.types import Group, kind_of


class DataRules(Findings):
    def data(self) -> None:
        endpoints = {endpoint_key(e.endpoint) for e in self.policy.data_endpoints}
        for i, resource in enumerate(self.request.data):
            path: Path = ("resources", "data", i)
            kind = kind_of(resource.type, Group.DATA)
            if kind is None:
                self.unknown_type(resource.type, Group.DATA, (*path, "type"))
                continue
            self.unknown_requirements(resource, path)
            self.costs_and_metrics(resource.costs, resource.metrics, path)
            if resource.storage is not None:
                storage, _ = self.resolve(resource.storage, with_data=False)
                if len(storage) != 1:
                    self.no(
                        MessageType.UNRESOLVED_REFERENCE if not storage else MessageType.AMBIGUOUS_REFERENCE,
                        "{path}: {ref} does not name exactly one storage resource",
                        (*path, "storage"),
                        ref=resource.storage,
                    )
            if isinstance(resource, SimpleDataResource):
                self.simple_data(resource, path)
            elif isinstance(resource, S3DataResource):
                self.s3_data(resource, path, endpoints)
            elif isinstance(resource, RucioDataResource):
                self.rucio_data(resource, path)
            elif isinstance(resource, IvoaDataResource):
                if self.ivoa_access_url(resource) is None:
                    self.no(
                        MessageType.NOT_SUPPORTED,
                        "{path}: IVOA data needs an HTTP(S) access_url in obscore or datalink",
                        (*path, "ivoa"),
                    )
            elif isinstance(resource, SkaoDataResource):
                self.no(
                    MessageType.NOT_SUPPORTED,
                    "{path}: SKAO data-lake resources are not supported",
                    (*path, "type"),
                )

    def simple_data(self, resource: SimpleDataResource, path: Path) -> None:
        if not resource.location:
            self.no(MessageType.MISSING_VALUE, "{path}: the data location is missing", (*path, "location"))
        elif not is_http(resource.location):
            self.no(
                MessageType.UNREACHABLE,
                "{path}: the broker can fetch data over HTTP(S) only, not {location}",
                (*path, "location"),
                location=resource.location,
            )

    def s3_data(self, resource: S3DataResource, path: Path, endpoints: set[str]) -> None:
        if not resource.endpoint:
            self.no(MessageType.MISSING_VALUE, "{path}: the S3 endpoint is missing", (*path, "endpoint"))
        elif endpoint_key(resource.endpoint) not in endpoints:
            self.no(
                MessageType.UNREACHABLE,
                "{path}: this platform cannot reach the S3 endpoint {endpoint}",
                (*path, "endpoint"),
                endpoint=resource.endpoint,
            )
        if not resource.bucket:
            self.no(MessageType.MISSING_VALUE, "{path}: the S3 bucket is missing", (*path, "bucket"))

    def rucio_data(self, resource: RucioDataResource, path: Path) -> None:
        if self.policy.images.rucio_stager is None:
            self.no(
                MessageType.NOT_SUPPORTED, "{path}: this platform does not stage Rucio data", (*path, "type")
            )
            return
        if not resource.endpoint:
            self.no(MessageType.MISSING_VALUE, "{path}: the Rucio endpoint is missing", (*path, "endpoint"))
        if not resource.object:
            self.no(MessageType.MISSING_VALUE, "{path}: the Rucio object is missing", (*path, "object"))

    @staticmethod
    def ivoa_access_url(resource: IvoaDataResource) -> str | None:
        block = resource.ivoa
        if block is None:
            return None
        for holder in (block.datalink, block.obscore):
            url = holder.access_url if holder is not None else None
            if url and is_http(url):
                return url
        return None
