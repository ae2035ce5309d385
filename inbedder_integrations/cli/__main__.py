"""``python -m inbedder_integrations.cli``: the same program as ``inbedder``."""

from . import main

__all__: list[str] = []

if __name__ == "__main__":
    main()
