//! The generated protobuf and gRPC code for `tq.v1`.

#![allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub, unused_qualifications)]

tonic::include_proto!("tq.v1");
