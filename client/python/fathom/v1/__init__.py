"""Messages and gRPC stubs generated from proto/fathom/v1 by generate.sh. Do not edit."""
