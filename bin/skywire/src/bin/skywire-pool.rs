//! `skywire-pool`: the pool service of a cluster on its own, the same as
//! `skywire serve pool`.

fn main() -> anyhow::Result<()> {
    skywire::service_main(skywire::ServiceKind::Pool)
}
