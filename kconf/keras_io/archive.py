"""The layout of a Keras 3 ``.keras`` archive: a zip of these three members.

Reading a model (``source``), reading its weights (``h5``) and writing an archive
(``export``) all name them from here.
"""

#: The model's JSON, as ``model.to_json()`` writes it (with its ``compile_config``).
ARCHIVE_CONFIG = "config.json"
#: The weights, an HDF5 file (``layers/<name>/vars/<i>``).
ARCHIVE_WEIGHTS = "model.weights.h5"
#: The Keras version that wrote it, and when.
ARCHIVE_METADATA = "metadata.json"
