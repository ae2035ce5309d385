"""Training: the QA data builder (`inbedder data build`) and LoRA / full fine-tuning (`inbedder train`).

Import the submodules; nothing is re-exported here, so importing the package stays cheap.
"""

__all__: list[str] = []
