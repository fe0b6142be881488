"""One module per DVC stage: read the inputs, call the core, write the outputs. A stage imports
the core, never another stage."""
