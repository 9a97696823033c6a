"""Sources read batch by batch: an image folder (``{images: {...}}``, Keras's
``image_dataset_from_directory``) and the streaming options that ``.npy`` files share.

``stream: true`` keeps a source on disk and reads it a batch at a time (``kconf.data.stream``);
``shuffle_buffer`` makes the training shuffle read blocks of neighbouring samples instead of
one random sample after another (tf.data's ``shuffle(buffer_size)``).
"""

from pydantic import Field, model_validator

from kconf.args.fields import (
    Bool,
    ConfigModel,
    IntPair,
    Name,
    NonNegativeInt,
    PositiveInt,
    Str,
    bounded,
    choice,
    config_error,
)
from kconf.text import show

#: How ``images`` resizes: the interpolations Keras's Pillow path (``ops.image.resize``)
#: offers on every backend.
INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5")
COLOR_MODES = ("grayscale", "rgb", "rgba")
LABEL_MODES = ("int", "categorical", "binary")
SUBSETS = ("training", "validation", "both")
ON_BAD_FILE = ("error", "skip")


class StreamArgs(ConfigModel):
    """What a source that can stay on disk adds: ``stream`` and ``shuffle_buffer``."""

    stream: Bool = Field(False, description="keep the data on disk and read it batch by "
                                            "batch (data larger than memory)")
    shuffle_buffer: PositiveInt | None = Field(
        None, description="with stream: shuffle blocks of this many neighbouring samples (in "
                          "a random order of blocks) instead of a full random permutation, so "
                          "reads stay sequential")

    @model_validator(mode="after")
    def _buffer_needs_stream(self):
        if self.shuffle_buffer is not None and not self.stream:
            raise config_error("stream", "shuffle_buffer shuffles a stream: set stream: true, "
                                         "or leave it out (data in memory is fully shuffled)",
                               at="shuffle_buffer")
        return self


class ImagesArgs(StreamArgs):
    """A folder of images, one sub-folder per class, as Keras's
    ``image_dataset_from_directory``: the class names are the sorted sub-folder names (or
    ``class_names``), the files are listed in sorted order and shuffled with ``seed``, and
    ``validation_split`` takes the last fraction of them for validation. Images are decoded
    with Pillow (the ``images`` extra) and resized to ``image_size`` as Keras does; their
    values stay 0-255 (add a ``Rescaling`` layer)."""

    path: Str = Field(min_length=1, description="the folder with one sub-folder per class")
    image_size: IntPair = Field((256, 256), description="[height, width] every image is "
                                                        "resized to")
    color_mode: choice("color mode", COLOR_MODES) = Field(
        "rgb", description="1 (grayscale), 3 (rgb) or 4 (rgba) channels")
    labels: choice("labels", ("inferred",)) = Field(
        "inferred", description="inferred: from the sub-folder each image is in")
    label_mode: choice("label mode", LABEL_MODES) | None = Field(
        "int", description="int labels of shape (N,), categorical one-hot rows, binary 0/1 "
                           "floats of shape (N, 1); null: no labels")
    class_names: list[Name] | None = Field(
        None, min_length=1, description="the sub-folders to use, in this order (default: "
                                        "every sub-folder, sorted)")
    validation_split: bounded(float, gt=0, lt=1) | None = Field(
        None, description="fraction of the images for validation (the last ones after the "
                          "shuffle)")
    subset: choice("subset", SUBSETS) | None = Field(
        None, description="with validation_split: training or validation (both: train and "
                          "validation, as data.source)")
    seed: NonNegativeInt | None = Field(None, description="seed of the file shuffle; "
                                                          "default: the config's seed")
    shuffle: Bool = Field(True, description="shuffle the file order once (false: sorted)")
    interpolation: choice("interpolation", INTERPOLATIONS) = Field(
        "bilinear", description="how images are resized")
    crop_to_aspect_ratio: Bool = Field(
        False, description="crop the largest centred window of image_size's aspect ratio "
                           "before resizing")
    follow_links: Bool = Field(False, description="follow symbolic links to sub-folders")
    on_bad_file: choice("on_bad_file", ON_BAD_FILE) = Field(
        "error", description="a file that is not a readable image: error, or skip it with "
                             "a warning")

    @model_validator(mode="after")
    def _split_and_subset(self):
        if (self.validation_split is None) != (self.subset is None):
            given, missing = (("subset", "validation_split") if self.validation_split is None
                              else ("validation_split", "subset"))
            raise config_error("images", f"{given} needs {missing} (Keras asks for both or "
                                         "neither)", at=given)
        if self.label_mode is None and self.class_names is not None:
            raise config_error("images", "class_names picks labelled sub-folders; it needs a "
                                         "label_mode", at="class_names")
        if self.class_names is not None and len(set(self.class_names)) != len(self.class_names):
            raise config_error("images", f"class_names repeats a name: "
                                         f"{show(self.class_names)}", at="class_names")
        return self
