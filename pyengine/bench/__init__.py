"""The benchmark harness behind ``pyengine bench`` and ``benchmarks/``: the shape set
(:mod:`.shapes`), the isolated, validated timing of every implementation (:mod:`.harness`) and
what is made of the results (:mod:`.report`)."""
