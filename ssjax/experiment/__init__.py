"""The experiment layer: the programs users run on top of the library.

Config loading and validation (:mod:`~ssjax.experiment.config`), the runner loop with seeds,
sharding, resume and summary (:mod:`~ssjax.experiment.runner`), checkpoints
(:mod:`~ssjax.experiment.checkpoint`), TensorBoard and ``metrics.jsonl``
(:mod:`~ssjax.experiment.tb`), the paper's figures (:mod:`~ssjax.experiment.figures`,
:mod:`~ssjax.experiment.reproduce`), the demo and the command line. The library (everything
outside this package) imports nothing from here.
"""
