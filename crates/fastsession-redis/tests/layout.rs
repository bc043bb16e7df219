//! What is at rest in Redis.
