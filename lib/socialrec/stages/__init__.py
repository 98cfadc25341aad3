"""The pipeline's stages, one module each: read the inputs from Delta, call the library
(``socialrec.data``, ``.features``, ``.models``, ``.evaluation``, ``.explain``), write the
outputs with MERGE (a rerun leaves the same rows) and return a small dict of what was done.
``socialrec.pipeline`` maps the configuration onto them and records the run. Imports
nothing here, so that importing a stage loads only what it needs."""
