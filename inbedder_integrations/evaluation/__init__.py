"""Evaluation: the paper's suites, the offline held-out suites, splits, metrics and reports (`inbedder eval`).

Import the submodules; nothing is re-exported here, so importing the package stays cheap.
"""

__all__: list[str] = []
