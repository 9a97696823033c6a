"""ONNX export (``kconf export-onnx``): a kconf model as an ONNX graph with its weights.

Needs the optional ``onnx`` package (``pip install 'kconf[onnx]'``). ``export.onnx_model``
converts a built model; ``run.export_model`` builds one from a config or a run folder.
Converters live per layer family (``core``, ``conv``, ``image``, ``norm``, ``recurrent``,
``attention``), listed in the closed table ``table.CONVERTERS``.
"""
from kconf.onnx_io.export import DEFAULT_OPSET, export_onnx, onnx_model

__all__ = ["DEFAULT_OPSET", "export_onnx", "onnx_model"]
