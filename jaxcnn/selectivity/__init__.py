"""Class selectivity and the structure of codes (docs/methods.md §6-§8): entropy curves, AuE and
MCAuE; grandmother cells, filter subsets and overlaps; sparsity; linear CKA; the comparison of a
pre-trained and a fine-tuned network."""

from jaxcnn.selectivity.analysis import SelectivityConfig, analyse_network, selectivity
from jaxcnn.selectivity.cka import cka_matrix, cka_minibatch
from jaxcnn.selectivity.compare import compare_pair
from jaxcnn.selectivity.entropy import (
    METHODS,
    area_under_entropy,
    entropy_curves,
    mcaue,
    mcaue_at_fractions,
    percent_decrease,
    percent_decrease_table,
)
from jaxcnn.selectivity.grandmother import (
    filter_ap,
    filters_needed,
    greedy_subsets,
    overlap_chance,
    top_set_overlap,
)
from jaxcnn.selectivity.sparsity import layer_sparsity, nonzero_fraction

__all__ = [
    "METHODS",
    "SelectivityConfig",
    "analyse_network",
    "area_under_entropy",
    "cka_matrix",
    "cka_minibatch",
    "compare_pair",
    "entropy_curves",
    "filter_ap",
    "filters_needed",
    "greedy_subsets",
    "layer_sparsity",
    "mcaue",
    "mcaue_at_fractions",
    "nonzero_fraction",
    "overlap_chance",
    "percent_decrease",
    "percent_decrease_table",
    "selectivity",
    "top_set_overlap",
]
