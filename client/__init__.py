"""client: a light gRPC client for TF Serving and the devserver (see the README). Never imports TensorFlow."""
