"""The ``segtutor`` command and the maintainer's tools.

==================  ================================================================
module              what it does
==================  ================================================================
``cli``             the ``segtutor`` command: open, doctor, bench, release, grade
``workspace``       the learner's workspace that ``segtutor open`` creates and opens
``doctor``          what an installation has: versions, device, data, weights
``bench``           the figures behind the course's speed and quality targets
``bench_*``         one benchmark section each
==================  ================================================================

The top layer: it may use every other part of segtutor; nothing imports it.
"""
