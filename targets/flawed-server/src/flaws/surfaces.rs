//! Twins of the surfaces beside the tools (`Guards::resources`, `Guards::prompt_files`): the
//! mistakes servers make when a URI or a prompt argument becomes a path or a fetch. Each
//! replaces one guard field; every other read goes to the reference.

use super::fetch::plain_fetch;
use super::{Flaw, Transport::Stdio};
use futures::future::BoxFuture;
use reference_server::guard::sandbox::SandboxError;
use reference_server::guards::{
    Fetch, Files, Guards, MAX_COMPLETIONS, PathCompletions, PromptFiles, ResourceBody,
    ResourceError, ResourceReads, body_of, completed_directory, is_web_uri,
};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

/// Longest file a twin reads.
const MAX_READ: u64 = 1 << 20;

/// `path` joined onto `root` with no check, read whole (at most [`MAX_READ`] bytes).
fn read_joined(root: &std::path::Path, path: &str) -> Result<Vec<u8>, SandboxError> {
    let mut bytes = Vec::new();
    std::fs::File::open(root.join(path))?
        .take(MAX_READ)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[derive(Clone, Copy)]
enum Mistake {
    /// A `file://` URI under the template's literal prefix: the rest joined onto the root.
    TemplateJoined,
    /// An http(s) URI: fetched with a plain client, no egress policy.
    FetchOpen,
}

struct FlawedResources {
    name: &'static str,
    mistake: Mistake,
    root: PathBuf,
    /// The template's literal part, `file:///SANDBOX/`.
    prefix: String,
    reference: Arc<dyn ResourceReads>,
}

impl ResourceReads for FlawedResources {
    fn name(&self) -> &'static str {
        self.name
    }
    fn read<'a>(
        &'a self,
        uri: &'a str,
        files: Arc<dyn Files>,
        fetch: Arc<dyn Fetch>,
    ) -> BoxFuture<'a, Result<ResourceBody, ResourceError>> {
        Box::pin(async move {
            match self.mistake {
                Mistake::TemplateJoined => {
                    if let Some(rest) = uri.strip_prefix(&self.prefix) {
                        return Ok(body_of(read_joined(&self.root, rest)?));
                    }
                }
                Mistake::FetchOpen => {
                    if is_web_uri(uri) {
                        return Ok(ResourceBody::Text(plain_fetch(uri).await?.body));
                    }
                }
            }
            self.reference.read(uri, files, fetch).await
        })
    }
}

fn swap_resources(
    guards: &mut Guards,
    context: &reference_server::cli::BuildContext,
    name: &'static str,
    mistake: Mistake,
) {
    guards.resources = Arc::new(FlawedResources {
        name,
        mistake,
        root: context.root.clone(),
        prefix: guards.resource_uris.root().to_owned(),
        reference: guards.resources.clone(),
    });
}

pub const TEMPLATE_UNSANDBOXED: Flaw = Flaw {
    name: "template-unsandboxed",
    summary: "resources/read strips the template's `file:///SANDBOX/` prefix and joins the rest onto the sandbox path with no check (`../` and absolute paths escape).",
    caught: &[(Stdio, "TRAV-DOTDOT")],
    swaps: &["resources"],
    harness_args: &[],
    tools: Some(|guards, context| {
        swap_resources(
            guards,
            context,
            "template-unsandboxed",
            Mistake::TemplateJoined,
        )
    }),
    http: None,
};

pub const RESOURCE_FETCH_OPEN: Flaw = Flaw {
    name: "resource-fetch-open",
    summary: "resources/read fetches any http(s) URI with a plain client: the egress policy guards fetch_url only.",
    caught: &[(Stdio, "SSRF-LOOPBACK")],
    swaps: &["resources"],
    harness_args: &[],
    tools: Some(|guards, context| {
        swap_resources(guards, context, "resource-fetch-open", Mistake::FetchOpen)
    }),
    http: None,
};

/// The prompt's file, its argument joined onto the root with no check.
struct JoinedPromptFiles {
    root: PathBuf,
}

impl PromptFiles for JoinedPromptFiles {
    fn name(&self) -> &'static str {
        "prompt-path-joined"
    }
    fn read<'a>(
        &'a self,
        path: &'a str,
        _files: Arc<dyn Files>,
    ) -> BoxFuture<'a, Result<String, SandboxError>> {
        Box::pin(async move {
            String::from_utf8(read_joined(&self.root, path)?).map_err(|_| SandboxError::NotText)
        })
    }
}

pub const PROMPT_PATH_JOINED: Flaw = Flaw {
    name: "prompt-path-joined",
    summary: "The review_file prompt joins its path argument onto the sandbox path with no check and quotes the file.",
    caught: &[(Stdio, "TRAV-DOTDOT")],
    swaps: &["prompt_files"],
    harness_args: &[],
    tools: Some(|guards, context| {
        guards.prompt_files = Arc::new(JoinedPromptFiles {
            root: context.root.clone(),
        })
    }),
    http: None,
};

/// Path completions from `std::fs::read_dir` of the value's directory joined onto the root.
struct JoinedCompletions {
    root: PathBuf,
}

impl PathCompletions for JoinedCompletions {
    fn name(&self) -> &'static str {
        "completion-unsandboxed"
    }
    fn complete<'a>(
        &'a self,
        value: &'a str,
        _files: Arc<dyn Files>,
    ) -> BoxFuture<'a, Result<Vec<String>, SandboxError>> {
        Box::pin(async move {
            let dir = completed_directory(value);
            let mut values = Vec::new();
            for entry in std::fs::read_dir(self.root.join(dir))?.take(1000) {
                let name = entry?.file_name().to_string_lossy().into_owned();
                let path = if dir == "." {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                if path.starts_with(value) {
                    values.push(path);
                }
            }
            values.truncate(MAX_COMPLETIONS);
            Ok(values)
        })
    }
}

pub const COMPLETION_UNSANDBOXED: Flaw = Flaw {
    name: "completion-unsandboxed",
    summary: "Path completions list the directory the value names, joined onto the sandbox path with no check (`../outside/` lists a directory outside).",
    caught: &[(Stdio, "TRAV-DOTDOT")],
    swaps: &["completions"],
    harness_args: &[],
    tools: Some(|guards, context| {
        guards.completions = Arc::new(JoinedCompletions {
            root: context.root.clone(),
        })
    }),
    http: None,
};
