"""Layer configs: the wrapper ``{ClassName: args}`` of each registered layer, and their union.

Each layer's argument model is written beside its math in its engine file and paired with
it in ``kconf.engine.layers.REGISTRY``; the wrappers here are derived from that registry.
``LAYER_SPECS`` (tag -> wrapper) is the closed list of layers a model may name; ``LayerSpec``
is the tagged union built from it once. ``TimeDistributed`` wraps a member of the same union
(or a model's name), so the union is recursive.
"""
from __future__ import annotations

from pydantic import create_model

from kconf.args.fields import Name, SingleKey, TaggedSpec, args_of, tagged_union
from kconf.args.layer import LayerArgs
from kconf.engine.layers import REGISTRY
from kconf.engine.layers.time_distributed import TimeDistributedArgs


class LayerSpecBase(TaggedSpec):
    """A layer as written in a sequential list: ``{Dense: {units: 10}}``."""

    @property
    def class_name(self) -> str:
        """The Keras class name (``"Dense"``)."""
        return self.tag


def _spec(name: str, args: type[LayerArgs]) -> type[LayerSpecBase]:
    """The wrapper ``{name: args}`` of one layer (``DenseSpec``)."""
    return create_model(f"{name}Spec", __base__=LayerSpecBase, __module__=__name__,
                        **{name: (args_of(args), ...)})


#: Tag (Keras class name) -> wrapper model: every registered layer a config can name.
LAYER_SPECS: dict[str, type[LayerSpecBase]] = {
    name: _spec(name, e.args) for name, e in REGISTRY.items() if e.args is not None
}
# Each wrapper is also a name of this module (``kconf.config.layers.DenseSpec``), where pickle
# and copy find a class by its module and name: a validated config pickles (Ray, processes).
globals().update({spec.__name__: spec for spec in LAYER_SPECS.values()})

LayerSpec = tagged_union(
    SingleKey("layer", LAYER_SPECS, "{Dense: {units: 10}}"), LAYER_SPECS,
)

#: Tag of the model-name member of the union TimeDistributed wraps.
MODEL_TAG = "model name"

#: What TimeDistributed wraps: a layer, or a model's name (the same union plus a string).
InnerLayer = tagged_union(
    SingleKey("layer", LAYER_SPECS, "{Dense: {units: 10}} or a model's name",
              str_tag=MODEL_TAG),
    {MODEL_TAG: Name, **LAYER_SPECS},
)

# TimeDistributed refers to the union that contains it: complete its model and wrapper now.
TimeDistributedArgs.model_rebuild(_types_namespace={"InnerLayer": InnerLayer})
LAYER_SPECS["TimeDistributed"].model_rebuild()
