//! Redis Cluster: placeholder, filled in below if time allows.
