"""The offline and nearline pipelines on Ray Data (the optional ``scale`` extra).

The single-process functions stay the reference: knowledge extraction
(:func:`offline.knowledge.runner.describe_catalogue`), encoding
(:func:`offline.encode.encode_records`), GBR generation (:func:`offline.gbr.nearline.
generate_users`, :func:`offline.gbr.nearline.run_nearline`) and publishing
(:func:`offline.publish.stores.publish_redis`). Each module here runs one of them over shards on a
Ray cluster and gives the same results:

- :mod:`offline.scale.session`: connecting to Ray (``RAY_ADDRESS``, a local Ray otherwise) and
  sizing worker pools;
- :mod:`offline.scale.shards`: shards as Ray Data rows, one row a whole shard;
- :mod:`offline.scale.knowledge`, :mod:`offline.scale.llm_pool`: knowledge records;
- :mod:`offline.scale.encode`: semantic vectors;
- :mod:`offline.scale.generate`: generated-behaviour blocks;
- :mod:`offline.scale.publish`: item vectors and users' sequences into Redis;
- :mod:`offline.scale.nearline`: the nearline job.

Nothing is imported here, so naming the package costs nothing where Ray is not installed; the
serving path never imports it.
"""
