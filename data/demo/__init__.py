"""`antt demo`: seeded demo data on real or synthetic boundaries."""
