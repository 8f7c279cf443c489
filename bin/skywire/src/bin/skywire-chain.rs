//! `skywire-chain`: the chain service of a cluster on its own, the same as
//! `skywire serve chain`.

fn main() -> anyhow::Result<()> {
    skywire::service_main(skywire::ServiceKind::Chain)
}
