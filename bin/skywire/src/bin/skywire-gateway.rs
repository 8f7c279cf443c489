//! `skywire-gateway`: the gateway service of a cluster on its own, the same as
//! `skywire serve gateway`.

fn main() -> anyhow::Result<()> {
    skywire::service_main(skywire::ServiceKind::Gateway)
}
