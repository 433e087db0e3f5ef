//! The AWS SDK configuration a command runs with: `--profile` and `--region` as the AWS CLI
//! takes them, and at a terminal the credentials checked before any call.

use crate::error::Error;

/// `--profile` and `--region`, as the AWS CLI takes them.
#[derive(Clone, Debug, Default)]
pub struct AwsArgs {
    pub profile: Option<String>,
    pub region: Option<String>,
}

/// One SDK configuration for every client. Timeouts turn a hanging endpoint into an error the
/// playbook can report, instead of a silent Lambda timeout.
pub async fn sdk_config(args: &AwsArgs) -> Result<aws_config::SdkConfig, Error> {
    if let Some(r) = &args.region
        && !crate::vocab::is_region_name(r)
    {
        return Err(Error::Usage(format!(
            "--region {r:?} is not an AWS Region name (e.g. us-east-1)"
        )));
    }
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .operation_attempt_timeout(std::time::Duration::from_secs(5))
        .operation_timeout(std::time::Duration::from_secs(15))
        .build();
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts);
    if let Some(p) = &args.profile {
        profile_exists(p).await?;
        loader = loader.profile_name(p);
    }
    if let Some(r) = &args.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(Error::Usage(
            "no AWS Region: pass --region, set AWS_REGION, or use a profile that has one".into(),
        ));
    }
    let Some(p) = &args.profile else {
        return Ok(sdk);
    };
    // As the AWS CLI does: a profile named on the command line wins over credentials in the
    // environment (the SDK's default chain reads AWS_ACCESS_KEY_ID first).
    let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
        .profile_name(p)
        .configure(
            &aws_config::provider_config::ProviderConfig::default()
                .with_region(sdk.region().cloned()),
        )
        .build();
    Ok(sdk
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build())
}

/// The SDK configuration of a command at a terminal: credentials checked before any call.
pub async fn cli_sdk(args: &AwsArgs) -> Result<aws_config::SdkConfig, Error> {
    let sdk = sdk_config(args).await?;
    credentials_ready(&sdk, args).await?;
    Ok(sdk)
}

/// A profile that is in neither the config nor the credentials file is a typo: one line, exit 2,
/// before any call (the SDK would otherwise fall back to whatever else it finds).
async fn profile_exists(name: &str) -> Result<(), Error> {
    let files = aws_runtime::env_config::file::EnvConfigFiles::default();
    let set = aws_config::profile::load(
        &aws_types::os_shim_internal::Fs::real(),
        &aws_types::os_shim_internal::Env::real(),
        &files,
        None,
    )
    .await
    .map_err(|e| {
        Error::Usage(format!(
            "--profile {name}: the AWS config files cannot be read: {e}"
        ))
    })?;
    if set.get_profile(name).is_some() {
        return Ok(());
    }
    let known: Vec<&str> = set.profiles().collect();
    Err(Error::Usage(format!(
        "--profile {name}: no such profile (the AWS config files have: {})",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )))
}

/// At a terminal the credentials are resolved before anything else: a missing or broken one is a
/// configuration problem (exit 2, one line), not a failed containment.
async fn credentials_ready(sdk: &aws_config::SdkConfig, args: &AwsArgs) -> Result<(), Error> {
    use aws_credential_types::provider::ProvideCredentials;
    let whose = match &args.profile {
        Some(p) => format!("profile {p}"),
        None => "the environment, AWS_PROFILE or the default profile".to_owned(),
    };
    let Some(provider) = sdk.credentials_provider() else {
        return Err(Error::Usage(format!("no AWS credentials from {whose}")));
    };
    provider.provide_credentials().await.map(|_| ()).map_err(|e| {
        if let aws_credential_types::provider::error::CredentialsError::CredentialsNotLoaded(_) = e
        {
            return Error::Usage(format!(
                "no AWS credentials found in {whose} (nor SSO, a container or instance role): pass --profile NAME or set AWS_PROFILE"
            ));
        }
        // The innermost cause is the one that says what to fix.
        let mut cause: &dyn std::error::Error = &e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        Error::Usage(format!("no usable AWS credentials from {whose}: {cause}"))
    })
}
