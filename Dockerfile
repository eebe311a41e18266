# Build: docker build -t acmegw .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /acmegw ./cmd/acmegw && mkdir /data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /acmegw /acmegw
# The CA keys live in /data; distroless "nonroot" is uid 65532.
COPY --from=build --chown=65532:65532 /data /data
ENV ACMEGW_LISTEN=:14000 ACMEGW_DATA_DIR=/data
VOLUME /data
EXPOSE 14000
ENTRYPOINT ["/acmegw"]
CMD ["serve"]
