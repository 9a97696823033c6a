"""Layer configs: the wrapper ``{ClassName: args}`` of each registered layer, and their union.

Each layer's argument model is written beside its math in its engine file and paired with
it in ``kconf.engine.layers.REGISTRY``; the wrappers here are derived from that registry.
``LAYER_SPECS`` (tag -> wrapper) is the closed list of layers a model may name; ``LayerSpec``
is the tagged union of it, whose members (and their argument models) are built when a config
first names them. ``TimeDistributed`` wraps a member of the same union (or a model's name), so
the union is recursive; so does ``Bidirectional`` (a recurrent member).
"""

from kconf.args.fields import Name
from kconf.args.unions import (
    SingleKey,
    TaggedSpec,
    Wrappers,
    lazy_union,
    or_name,
    wrapper_lookup,
)
from kconf.engine.layers import REGISTRY, bidirectional, time_distributed


class LayerSpecBase(TaggedSpec):
    """A layer as written in a sequential list: ``{Dense: {units: 10}}``."""

    @property
    def class_name(self) -> str:
        """The Keras class name (``"Dense"``)."""
        return self.tag


#: Tag (Keras class name) -> wrapper model: every registered layer a config can name. A wrapper
#: (and its layer's argument model) is built on its first look-up: start-up does not grow with
#: the registry.
LAYER_SPECS: Wrappers = Wrappers(
    LayerSpecBase, __name__, (name for name in REGISTRY if REGISTRY.place(name).args is not None),
    lambda name: REGISTRY[name].args)

#: Each wrapper is also a name of this module (``kconf.config.layers.DenseSpec``).
__getattr__ = wrapper_lookup(__name__, LAYER_SPECS)

LayerSpec = lazy_union(SingleKey("layer", LAYER_SPECS, "{Dense: {units: 10}}"), LAYER_SPECS)

#: Tag of the model-name member of the union TimeDistributed wraps.
MODEL_TAG = "model name"

#: What TimeDistributed wraps: a layer, or a model's name (the same union plus a string).
InnerLayer = lazy_union(
    SingleKey("layer", LAYER_SPECS, "{Dense: {units: 10}} or a model's name",
              str_tag=MODEL_TAG),
    or_name(MODEL_TAG, Name, LAYER_SPECS),
)

# TimeDistributed refers to the union that contains it: its (deferred) model finds the name in
# its module when it is first built.
time_distributed.InnerLayer = InnerLayer
# Bidirectional wraps recurrent layers written as members of the layer union (its validator
# accepts the recurrent ones only).
bidirectional.LayerSpec = LayerSpec
