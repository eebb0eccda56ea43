"""The run flow, one way down: :mod:`.launch` (the mode and the processes) -> :mod:`.stages`
(a staged model's stages) -> :mod:`.train` -> :mod:`.alpha_search` (``alpha: auto``) ->
:mod:`.single` (train and test one run) -> :mod:`.record` (the JSON, per-user hits, curves) ->
:mod:`.build` (config, data, model, trainer, resume)."""
