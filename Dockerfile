# podtables as a Linkerd proxy-init drop-in (init container) and test proxy.
#   docker build -t ghcr.io/podtables/podtables .
#   initContainer args: ["init", "linkerd", "--incoming-proxy-port", "4143", ...]
# The CLI is bundled into dist/: an entry, one bundle per command and their V8 code caches, made
# by the build stage's node, which is the final stage's. Only koffi (the FFI `podtables proxy`
# uses for SO_ORIGINAL_DST) stays a node module, with its prebuilt native library for the build platform
# (@koromix/koffi-linux-*: build each architecture natively, e.g. with buildx).

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY bin ./bin
RUN node scripts/build.mjs \
 && npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
 && mkdir -p /out/node_modules \
 && cp -r node_modules/koffi node_modules/@koromix /out/node_modules/ \
 && cp -r dist bin package.json /out/

FROM node:20-bookworm-slim
# iptables brings both backends (xtables-legacy-multi, xtables-nft-multi); nsenter (for --netns)
# and setpriv come with util-linux, which the base image has; procps brings sysctl (for
# --timeout-close-wait-secs with --netns); iproute2 brings ip (`init istio`: the TPROXY policy
# route, and ::6 on lo with --dual-stack; run it as uid 0, as istio-init runs, since ip drops file
# capabilities it was not also given as inheritable); libcap2-bin only to set file caps.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables procps iproute2 libcap2-bin \
 && setcap cap_net_admin,cap_net_raw+ep /usr/sbin/xtables-legacy-multi \
 && setcap cap_net_admin,cap_net_raw+ep /usr/sbin/xtables-nft-multi \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out /opt/podtables
RUN ln -s /opt/podtables/bin/podtables.cjs /usr/local/bin/podtables \
 && chmod +x /opt/podtables/bin/podtables.cjs \
 && mkdir -p /run/xtables && chmod 1777 /run/xtables
# iptables-legacy locks /run/xtables.lock; keep it somewhere a non-root, read-only-root container
# can write when /run is an emptyDir (see deploy/linkerd-pod.yaml)
ENV XTABLES_LOCKFILE=/run/xtables/xtables.lock NODE_ENV=production
# non-root by default: the iptables binaries carry NET_ADMIN and NET_RAW as file capabilities,
# which the kernel grants only when the pod allows privilege escalation; otherwise run as 0 with
# every other capability dropped (the example manifest shows both)
USER 65534:65534
ENTRYPOINT ["podtables"]
CMD ["--help"]
