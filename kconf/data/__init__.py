"""Data: the arrays a config's ``data`` section names, split and preprocessed.

``sources.load_splits(cfg)`` is the entry point. ``csv_source`` reads CSV columns,
``digits`` scikit-learn's digits (imported only when used), ``split`` divides one source by
seeded fractions, ``preprocess`` fits each step on the training split and applies it to all;
``problem.DataProblem`` is what they raise, located in the YAML by ``load_splits``.
``images`` reads image folders as Keras does; ``stream`` keeps data on disk and reads it
batch by batch (``stream: true``: memory-mapped ``.npy``, lazily decoded images, and
``table_stream``'s indexed CSV and Parquet row groups).
"""
