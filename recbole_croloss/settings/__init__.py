"""The run's settings, parsed once before any data: the config with the plugin's defaults
(:mod:`.config`), the run spec that reads and checks every plugin key (:mod:`.spec`, with
:mod:`.training_spec` for the loss and its negatives, :mod:`.schedule` for the training regime and
:mod:`.alpha_search` for ``alpha: auto``), and the checks of single keys (:mod:`.settings_checks`)."""
