"""The test bed: real services started by the test suite and torn down after.

Fixture contract (session scope unless said otherwise):

docker_bed.py
  docker_engine      -> DockerEngine(base_url="unix:///var/run/docker.sock"); dockerd started if none answers.
  registry           -> Registry(host="127.0.0.1:PORT", username=None, password=None): anonymous, stands in for ttl.sh.
  auth_registry      -> Registry(host="127.0.0.1:PORT", username=..., password=...): htpasswd auth, stands in for Docker Hub.
  standin_images     -> StandIns: upstream images built offline and pushed to `registry` under the default
                        repository paths; .config_overrides is a dict of build_config options (spectro_pub_repo,
                        spectro_luet_repo, pe_version, kairos_version, ...) that point every upstream image at the mirror.
aws_bed.py
  moto_server        -> MotoServer(endpoint_url="http://127.0.0.1:PORT", region="us-east-1", access_key, secret_key),
                        serving S3, EC2 and IAM, with the ImportSnapshot test double loaded.
palette_bed.py
  palette_api        -> PaletteApi(endpoint="127.0.0.1:PORT", url="http://127.0.0.1:PORT", api_key=...):
                        a local HTTP test double of the Palette API.

`python -m tests.testbed up` starts the same services outside pytest (for the README's demo command) and writes their
addresses as Ansible extra vars; `python -m tests.testbed down` stops them.
"""
