"""IVOA ExecutionBroker on Kubernetes."""

__version__ = "0.1.0"
