//! Faults against redis-server processes of the tests' own.
