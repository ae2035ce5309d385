"""Cluster one corpus under several instructions, name the clusters, and report.

The same texts fall into different groups depending on the question asked of
them.  :func:`cluster_corpus` embeds a corpus under each instruction, clusters
it (k-means or agglomerative, ``k`` given or chosen by silhouette), names every
cluster by the short answer its members agree on, or else by the model's answer
about the cluster as a whole (the paper's interpretability result), together
with the words that set the cluster apart from the others (class-based TF-IDF, as BERTopic does), scores the
clusters against gold labels where there are any, and projects the vectors to
2-D for a picture.  :func:`write_report` writes that as JSON, markdown, a PNG
and one self-contained HTML page.

One job per module: :mod:`.corpora` loads texts, :mod:`.core` clusters and
scores, :mod:`.kchoice` chooses k, :mod:`.answers` asks (and caches) the model's
answers, :mod:`.names` names, :mod:`.report` renders.  Everything is importable
from here, as it was when this was one module.
"""

from . import answers, core, corpora, kchoice, names, report
from .answers import *  # noqa: F403
from .core import *  # noqa: F403  (each submodule's __all__ bounds what comes in)
from .corpora import *  # noqa: F403
from .kchoice import *  # noqa: F403
from .names import *  # noqa: F403
from .report import *  # noqa: F403

__all__: list[str] = []
__all__ += corpora.__all__
__all__ += core.__all__
__all__ += answers.__all__
__all__ += kchoice.__all__
__all__ += names.__all__
__all__ += report.__all__
