//! The RPC methods a server answers, read from the services' encoded file
//! descriptor sets (as generated for reflection): the one place layers learn
//! a method's path and whether its requests or responses stream.

use prost::Message;

/// One method of a served service.
pub(crate) struct RpcMethod {
    /// `package.Service`.
    pub(crate) service: String,
    /// The method's name.
    pub(crate) name: String,
    /// Whether the client sends a stream of messages.
    pub(crate) client_streaming: bool,
    /// Whether the server sends a stream of messages.
    pub(crate) server_streaming: bool,
}

impl RpcMethod {
    /// The HTTP/2 path a call of this method is sent to: `/package.Service/Method`.
    pub(crate) fn path(&self) -> String {
        format!("/{}/{}", self.service, self.name)
    }

    /// Whether either side streams: the call may stay open for as long as
    /// a client likes, unlike a unary call.
    pub(crate) fn streams(&self) -> bool {
        self.client_streaming || self.server_streaming
    }
}

/// Every method of every service the encoded `FileDescriptorSet`s declare.
pub(crate) fn rpc_methods(descriptor_sets: &[&[u8]]) -> anyhow::Result<Vec<RpcMethod>> {
    let mut methods = Vec::new();
    for encoded in descriptor_sets {
        let set = prost_types::FileDescriptorSet::decode(*encoded)?;
        for file in &set.file {
            for service in &file.service {
                let service_name = format!("{}.{}", file.package(), service.name());
                methods.extend(service.method.iter().map(|method| RpcMethod {
                    service: service_name.clone(),
                    name: method.name().to_owned(),
                    client_streaming: method.client_streaming(),
                    server_streaming: method.server_streaming(),
                }));
            }
        }
    }
    Ok(methods)
}

#[cfg(test)]
mod tests {
    use super::rpc_methods;

    #[test]
    fn fathoms_streaming_methods_are_upsert_stream_scroll_and_search() {
        let methods = rpc_methods(&[fathom_api::FILE_DESCRIPTOR_SET]).unwrap();
        let mut streaming: Vec<String> = methods.iter().filter(|m| m.streams()).map(|m| m.path()).collect();
        streaming.sort();
        assert_eq!(
            streaming,
            [
                "/fathom.v1.Documents/Scroll",
                "/fathom.v1.Documents/UpsertStream",
                "/fathom.v1.Search/Search"
            ]
        );
        assert!(
            methods
                .iter()
                .any(|m| m.path() == "/fathom.v1.Documents/Count" && !m.streams())
        );
    }
}
