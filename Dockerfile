# msml-recorder: one image for the recorder (`run`, the default) and the resource-manager shim (`rm-shim`).
# Build: docker build -t msml-recorder:0.1.0 .
# The bases are build arguments: NODE_IMAGE runs the recorder (Node 24, no compiler), BUILD_IMAGE compiles (it needs
# python3, make and g++ for the native UDP engine). Any Debian 12 image with Node 24 in /usr/local/bin will do.
ARG NODE_IMAGE=node:24-bookworm-slim
ARG BUILD_IMAGE=node:24-bookworm

# 1. compile TypeScript with the dev dependencies, and the native UDP engine (node-gyp: python3, make, g++)
FROM ${BUILD_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json binding.gyp ./
COPY src ./src
RUN npm ci && test -f build/Release/udp_engine.node
COPY tsconfig.json tsconfig.build.json ./
RUN npm run build

# 2. production dependencies only
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# 3. runtime: compiled JS, production node_modules, the default config; runs as the unprivileged "node" user
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    MSMLREC_SPOOL_DIR=/var/spool/msml-recorder \
    MSMLREC_OPS_PORT=8080
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/build/Release/udp_engine.node ./build/Release/udp_engine.node
COPY package.json LICENSE THIRD-PARTY.md ./
COPY conf ./conf
RUN mkdir -p /var/spool/msml-recorder && chown node:node /var/spool/msml-recorder
USER node
VOLUME ["/var/spool/msml-recorder"]
EXPOSE 8080
# liveness of the process; Kubernetes uses /readyz and /livez itself (see k8s/)
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.MSMLREC_OPS_PORT+'/livez').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["run"]
