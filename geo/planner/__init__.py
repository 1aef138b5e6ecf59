"""The launch-point planner: covering location problems (``geo.planner.covering``, pure numpy,
solved by ``geo.planner.solvers``), their inputs built from the database (``geo.planner.inputs``)
and the before/after figures of a set of sites (``geo.planner.figures``)."""
