"""The examples of the digest (../shared/spec/EXECUTION-BROKER.md), as data for tests.

Where the digest elides values (``…``, "as requested") they are filled in with real ones of the
right shape; otherwise the documents are as printed. Each is ``(id, document)``; the id names the
section it comes from. The official schemas themselves hold no document examples (only the C26
interval examples, which ``tests/unit/model/test_model_times.py`` reads from the files).
"""

from __future__ import annotations

from typing import Any

from tests.support.wire import (
    C26_COMPUTE,
    C26_DOCKER,
    C26_JUPYTER,
    C26_RUCIO_DATA,
    C26_STORAGE,
    C26_VOLUME,
    COMPUTE,
    DOCKER,
    JUPYTER,
    RUCIO_DATA,
    S3_DATA,
    S3_ENDPOINT,
    STORAGE,
)

Doc = dict[str, Any]

OFFERSET_UUID = "6b0c5a2e-9f3d-4c1e-8a7b-2d4f6e8a0b1c"
SESSION_UUID = "a1f2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
EXECUTABLE_UUID = "0f9e8d7c-6b5a-4493-8271-605f4e3d2c1b"
BROKER = "https://broker.example.org"
SESSION_TYPE = "https://www.purl.org/ivoa.net/EB/schema/types/sessions/execution-session-response-1.0"
OFFERSET_TYPE = "https://www.purl.org/ivoa.net/EB/schema/types/offersets/offerset-response-1.0"

# §2.9: the example exchange, request.
NB_DEMO: Doc = {
    "name": "nb-demo",
    "executable": {"type": JUPYTER, "name": "demo", "location": "https://example.org/demo.ipynb"},
    "resources": {
        "compute": [
            {
                "type": COMPUTE,
                "name": "compute-1",
                "cores": {"requested": {"min": 4, "max": 8}},
                "memory": {"requested": {"min": 16}},
            }
        ]
    },
    "schedule": {"requested": {"duration": "PT1H", "start": ["2026-08-14T09:00:00Z/PT3H"]}},
}

# §2.9: the same request written in C26 (ExecutionRequest: no name, one compute object, flat
# min/max, a single start interval, kind + meta).
NB_DEMO_C26: Doc = {
    "executable": {
        "kind": C26_JUPYTER,
        "meta": {"name": "demo"},
        "location": "https://example.org/demo.ipynb",
    },
    "compute": {
        "kind": C26_COMPUTE,
        "meta": {"name": "compute-1"},
        "cores": {"min": 4, "max": 8},
        "memory": {"min": 16},
    },
    "schedule": {"requested": {"duration": "PT1H", "start": "2026-08-14T09:00:00Z/PT3H"}},
}

# §2.9: the offer made for NB_DEMO.
NB_DEMO_OFFER: Doc = {
    "uuid": SESSION_UUID,
    "href": f"{BROKER}/sessions/{SESSION_UUID}",
    "type": SESSION_TYPE,
    "name": "nb-demo-offer-0",
    "phase": "OFFERED",
    "expires": "2026-08-14T08:05:00Z",
    "executable": {
        "type": JUPYTER,
        "name": "demo",
        "location": "https://example.org/demo.ipynb",
        "uuid": EXECUTABLE_UUID,
    },
    "resources": {
        "compute": [
            {
                "type": COMPUTE,
                "name": "compute-1",
                "cores": {"requested": {"min": 4, "max": 8}, "offered": {"min": 8, "max": 8}},
                "memory": {"requested": {"min": 16}, "offered": {"min": 16, "max": 16}},
            }
        ]
    },
    "schedule": {
        "requested": {"duration": "PT1H", "start": ["2026-08-14T09:00:00Z/PT3H"]},
        "preparing": {"start": "2026-08-14T09:50:00Z/PT0S", "duration": "PT10M"},
        "executing": {"start": "2026-08-14T10:00:00Z/PT0S", "duration": "PT2H"},
        "releasing": {"start": "2026-08-14T12:00:00Z/PT0S", "duration": "PT5M"},
    },
    "options": [{"type": "uri:enum-value-option", "path": "phase", "values": ["ACCEPTED", "REJECTED"]}],
}

# §2.9: the offer set answering NB_DEMO.
NB_DEMO_OFFERSET: Doc = {
    "uuid": OFFERSET_UUID,
    "href": f"{BROKER}/offersets/{OFFERSET_UUID}",
    "type": OFFERSET_TYPE,
    "name": "nb-demo",
    "created": "2026-08-14T08:00:00Z",
    "result": "YES",
    "offers": [NB_DEMO_OFFER],
}

# §2.9: after the accept.
NB_DEMO_ACCEPTED: Doc = {
    **NB_DEMO_OFFER,
    "phase": "ACCEPTED",
    "options": [{"type": "uri:enum-value-option", "path": "phase", "values": ["CANCELLED"]}],
}

# §2.3 step 5, §3.8: a NO.
NO_OFFERSET: Doc = {
    "uuid": OFFERSET_UUID,
    "href": f"{BROKER}/offersets/{OFFERSET_UUID}",
    "type": OFFERSET_TYPE,
    "created": "2026-08-14T08:00:00Z",
    "result": "NO",
    "messages": [
        {
            "type": "urn:ivoa:eb:unknown-type",
            "level": "ERROR",
            "time": "2026-08-14T08:00:00Z",
            "template": "{path}: unknown executable type {uri}",
            "values": {"path": "executable/type", "uri": "uri:zeppelin-notebook"},
            "message": "executable/type: unknown executable type uri:zeppelin-notebook",
        }
    ],
}

# §2.9 and §7 item 41: the update bodies, both dialects.
ACCEPT_STD: Doc = {"update": {"type": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}}
ACCEPT_C26: Doc = {"kind": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}
REJECT_C26: Doc = {"kind": "uri:enum-value-update", "path": "phase", "value": "REJECTED"}

# §6.2: the error document.
ERROR_DOCUMENT: Doc = {
    "messages": [
        {
            "type": "urn:ivoa:eb:invalid-transition",
            "level": "ERROR",
            "time": "2026-08-14T08:06:00Z",
            "template": "Cannot change phase from {from} to {to}",
            "values": {"from": "EXPIRED", "to": "ACCEPTED"},
            "message": "Cannot change phase from EXPIRED to ACCEPTED",
        }
    ]
}

# §5.3 X1: a notebook with 4 cores and 16 GiB; X2: with no resources at all.
X1: Doc = {
    "name": "x1",
    "executable": {"type": JUPYTER, "name": "notebook", "location": "https://example.org/x1.ipynb"},
    "resources": {
        "compute": [
            {"type": COMPUTE, "cores": {"requested": {"min": 4}}, "memory": {"requested": {"min": 16}}}
        ]
    },
}
X1_OFFERED = {
    "cores": {"requested": {"min": 4}, "offered": {"min": 8, "max": 8}},
    "memory": {"requested": {"min": 16}, "offered": {"min": 32, "max": 32}},
}
X2: Doc = {"executable": {"type": JUPYTER, "location": "https://example.org/x2.ipynb"}}

# §5.3 X3: scratch space mounted by name.
X3: Doc = {
    "name": "x3",
    "executable": {"type": DOCKER, "image": {"locations": ["ghcr.io/ivoa/oligia-webtop:ubuntu-2022.01.13"]}},
    "resources": {
        "compute": [
            {
                "type": COMPUTE,
                "volumes": [
                    {"name": "temp-volume", "resource": "scratch-space", "path": "/temp", "mode": "READWRITE"}
                ],
            }
        ],
        "storage": [{"type": STORAGE, "name": "scratch-space", "size": {"requested": {"min": 1024}}}],
    },
}

# §5.3 X4: an S3 bucket appearing read-only at /data.
X4: Doc = {
    "name": "x4",
    "executable": {"type": DOCKER, "image": {"locations": ["ghcr.io/ivoa/oligia-webtop:ubuntu-2022.01.13"]}},
    "resources": {
        "compute": [
            {
                "type": COMPUTE,
                "volumes": [
                    {"name": "data-volume", "resource": "source-data", "path": "/data", "mode": "READONLY"}
                ],
            }
        ],
        "data": [{"type": S3_DATA, "name": "source-data", "endpoint": S3_ENDPOINT, "bucket": "example-data"}],
    },
}

# §5.3 X9 (with PT1H, since the printed P1H is not ISO 8601) and X10.
X9: Doc = {"name": "x9", "executable": X3["executable"], "schedule": {"requested": {"duration": "PT1H"}}}
X10: Doc = {
    "name": "x10",
    "executable": X3["executable"],
    "resources": {
        "compute": [
            {"type": COMPUTE, "cores": {"requested": {"min": 2}}, "memory": {"requested": {"min": 2}}}
        ]
    },
    "schedule": {"requested": {"duration": "PT1H", "start": ["2023-08-14T00:00:00Z/P1D"]}},
}
# X14: 8 cores and 16 GiB.
X14: Doc = {
    "name": "x14",
    "executable": X3["executable"],
    "resources": {
        "compute": [
            {"type": COMPUTE, "cores": {"requested": {"min": 8}}, "memory": {"requested": {"min": 16}}}
        ]
    },
}

# §5.3 the talk's seed scenario: 32 cores + GPU for 4 h; 16 cores for 2 h; 32 cores + GPU for 2 h.
SEED_R1: Doc = {
    "name": "r1",
    "executable": X3["executable"],
    "resources": {
        "compute": [
            {
                "type": COMPUTE,
                "cores": {"requested": {"min": 32}},
                "gpus": {"requested": {"min": 1, "max": 1}},
            }
        ]
    },
    "schedule": {"requested": {"duration": "PT4H"}},
}
SEED_R2: Doc = {**SEED_R1, "name": "r2"}
SEED_R2["resources"] = {"compute": [{"type": COMPUTE, "cores": {"requested": {"min": 16}}}]}
SEED_R2["schedule"] = {"requested": {"duration": "PT2H"}}
SEED_R3: Doc = {**SEED_R1, "name": "r3", "schedule": {"requested": {"duration": "PT2H"}}}

# §9 item 26: the same GPU as an `extras` item.
GPU_EXTRAS: Doc = {
    "name": "gpu-extras",
    "executable": X3["executable"],
    "resources": {
        "compute": [
            {
                "type": COMPUTE,
                "cores": {"requested": {"min": 4}},
                "extras": [
                    {
                        "name": "ad104",
                        "type": "https://www.purl.org/ivoa.net/resource-types/nvidia-ad104",
                        "count": 1,
                        "spec": {"memory": {"min": 20}},
                    }
                ],
            }
        ]
    },
}

# §5.3: the reference broker's test 004, in C26.
REF_IMPL_004_C26: Doc = {
    "executable": {
        "kind": C26_JUPYTER,
        "meta": {"name": "test-004"},
        "location": "https://example.org/004.ipynb",
    },
    "compute": {"kind": C26_COMPUTE, "cores": {"min": 5, "max": 15}, "memory": {"min": 3, "max": 9}},
    "schedule": {"requested": {"duration": "PT1H"}},
}
REF_IMPL_004_STD: Doc = {
    "executable": {"type": JUPYTER, "name": "test-004", "location": "https://example.org/004.ipynb"},
    "resources": {
        "compute": [
            {
                "type": COMPUTE,
                "cores": {"requested": {"min": 5, "max": 15}},
                "memory": {"requested": {"min": 3, "max": 9}},
            }
        ]
    },
    "schedule": {"requested": {"duration": "PT1H"}},
}

# Storage, data (Rucio) and volumes in C26, and its ivoa-std twin.
MOUNTS_C26: Doc = {
    "executable": {
        "kind": C26_DOCKER,
        "meta": {"name": "job"},
        "image": {"locations": ["busybox:1.36"]},
        "command": ["ls", "/data"],
    },
    "compute": {
        "kind": C26_COMPUTE,
        "cores": {"min": 2},
        "volumes": [
            {
                "kind": C26_VOLUME,
                "meta": {"name": "scratch"},
                "path": "/scratch",
                "mode": "READWRITE",
                "resource": "work",
            },
            {
                "kind": C26_VOLUME,
                "meta": {"name": "input"},
                "path": "/data",
                "mode": "READONLY",
                "resource": "input",
            },
        ],
    },
    "storage": [{"kind": C26_STORAGE, "meta": {"name": "work"}, "size": {"min": 10, "max": 20}}],
    "data": [
        {
            "kind": C26_RUCIO_DATA,
            "meta": {"name": "input"},
            "storage": "work",
            "rucio": {
                "endpoint": "https://rucio.example.org",
                "scope": "project-51",
                "object": "obs-1",
                "type": "FILE",
            },
        }
    ],
    "schedule": {"requested": {"duration": "PT30M", "start": "2026-08-14T09:00:00Z/PT1H"}},
}
MOUNTS_STD: Doc = {
    "executable": {
        "type": DOCKER,
        "name": "job",
        "image": {"locations": ["busybox:1.36"]},
        "command": ["ls", "/data"],
    },
    "resources": {
        "compute": [
            {
                "type": COMPUTE,
                "cores": {"requested": {"min": 2}},
                "volumes": [
                    {"name": "scratch", "path": "/scratch", "mode": "READWRITE", "resource": "work"},
                    {"name": "input", "path": "/data", "mode": "READONLY", "resource": "input"},
                ],
            }
        ],
        "storage": [{"type": STORAGE, "name": "work", "size": {"requested": {"min": 10, "max": 20}}}],
        "data": [
            {
                "type": RUCIO_DATA,
                "name": "input",
                "storage": "work",
                "endpoint": "https://rucio.example.org",
                "domain": "project-51",
                "object": "obs-1",
                "objecttype": "FILE",
            }
        ],
    },
    "schedule": {"requested": {"duration": "PT30M", "start": ["2026-08-14T09:00:00Z/PT1H"]}},
}

REQUESTS: list[tuple[str, Doc]] = [
    ("digest 2.9 notebook request", NB_DEMO),
    ("digest 5.3 X1 notebook 4 cores 16 GiB", X1),
    ("digest 5.3 X2 notebook without resources", X2),
    ("digest 5.3 X3 scratch space mounted by name", X3),
    ("digest 5.3 X4 S3 bucket mounted read-only", X4),
    ("digest 5.3 X9 batch job with only a duration", X9),
    ("digest 5.3 X10 2 cores any time that day", X10),
    ("digest 5.3 X14 8 cores 16 GiB", X14),
    ("digest 5.3 seed R1 32 cores and a GPU for 4 h", SEED_R1),
    ("digest 5.3 seed R2 16 cores for 2 h", SEED_R2),
    ("digest 5.3 seed R3 32 cores and a GPU for 2 h", SEED_R3),
    ("digest 9.26 a GPU as an extras item", GPU_EXTRAS),
    ("digest 5.3 ref impl test 004 in ivoa-std", REF_IMPL_004_STD),
    ("storage data and volumes in ivoa-std", MOUNTS_STD),
]

C26_TWINS: list[tuple[str, Doc, Doc]] = [
    ("digest 2.9 notebook request", NB_DEMO_C26, {k: v for k, v in NB_DEMO.items() if k != "name"}),
    ("digest 5.3 ref impl test 004", REF_IMPL_004_C26, REF_IMPL_004_STD),
    ("storage rucio data and volume mounts", MOUNTS_C26, MOUNTS_STD),
]
