-- Barrier numbers for the cross-instance cache fence (src/gate/fence.rs). A number is
-- drawn after a write commits; PostgreSQL delivers notifications in commit order, so an
-- instance that has seen barrier n has seen every change committed before n was drawn.
-- SQLite runs one instance and needs none.
CREATE SEQUENCE consentry_gate_barrier;
