"""`antt demo`: seeded demo data on real or synthetic boundaries.

``generate(engine, ...)`` does it all in one transaction; ``build_haiphong_demo(url)`` builds
a test/bench database on the real Hải Phòng boundaries. The plan (planted hotspots, villages
left uncovered) is stored in the ``demo_manifest`` table under key 'demo'.
"""

from data.demo.generate import DemoResult, build_haiphong_demo, generate

__all__ = ["DemoResult", "build_haiphong_demo", "generate"]
