"""Pure builders of the Kubernetes objects the operator writes, one module per part of a session.

* :mod:`.pod`: the session's Pod (its main container, volumes, init containers, labels);
* :mod:`.storage`: its volumes, mounts and PersistentVolumeClaims, and the storage an offer gives;
* :mod:`.staging`: the init containers that stage data, and copies of endpoint Secrets;
* :mod:`.notebook`: a notebook server's container, token Secret and Service, and its access URLs;
* :mod:`.status`: the status patches of Executions and OfferSets (conditions, messages).

Each takes plain values and returns plain dicts: no I/O, no clock (``now`` is an argument). Unit
tests pin them with exact dicts (``tests/unit/operator/test_operator_builders.py``,
``tests/unit/operator/test_operator_data.py``).
"""
