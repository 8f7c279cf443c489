//! `skywire`: run a node, manage keys, ping and benchmark peers (see the
//! library's docs).

fn main() -> anyhow::Result<()> {
    skywire::main()
}
