"""Data: the arrays a config's ``data`` section names, split and preprocessed.

``sources.load_prepared(cfg)`` is the entry point (``load_splits`` its splits alone).
``tables`` reads CSV (``csv_source``) and Parquet (``parquet_source``) columns and fits
their encoding (vocabularies, fills) on the training split, ``digits`` scikit-learn's digits
(imported only when used), ``split`` divides one source by seeded fractions, ``preprocess``
fits each step on the training split and applies it to all, as JSON parameters a run saves
(``Preprocessing``: ``preprocess.json``); ``problem.DataProblem`` is what they raise, located
in the YAML by ``load_prepared``.
``images`` reads image folders as Keras does; ``stream`` keeps data on disk and reads it
batch by batch (``stream: true``: memory-mapped ``.npy``, lazily decoded images, and
``table_stream``'s indexed CSV and Parquet row groups).
"""
