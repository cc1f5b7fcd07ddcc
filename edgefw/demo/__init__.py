"""``edgefw demo`` and ``edgefw verify``'s machinery: running one file on every runtime
(:mod:`.runners`), exporting with golden data and the input contract (:mod:`.artifacts`),
the demo's steps (:mod:`.pipeline`) and its report (:mod:`.report`).

Imported only by the commands, so ``import edgefw`` stays light.
"""
