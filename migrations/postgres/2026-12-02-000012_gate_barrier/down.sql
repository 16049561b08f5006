DROP SEQUENCE consentry_gate_barrier;
