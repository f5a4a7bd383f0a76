//! The Helm chart against the local control plane (to be written).
