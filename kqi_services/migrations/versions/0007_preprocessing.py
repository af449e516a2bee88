"""preprocessing: definitions, histories as runs (one per definition and input data), data made by a history

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        'preprocessings',
        sa.Column('created_by', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('modified_by', sa.String(length=255), nullable=True),
        sa.Column('modified_at', sa.DateTime(), nullable=False),
        sa.Column('id', Id, nullable=False),
        sa.Column('tenant_id', Id, nullable=False),
        sa.Column('name', sa.String(length=256), nullable=False),
        sa.Column('memo', sa.Text(), nullable=True),
        sa.Column('entry_point', sa.Text(), nullable=True),
        sa.Column('registry_id', sa.BigInteger(), nullable=True),
        sa.Column('image', sa.String(length=512), nullable=True),
        sa.Column('image_tag', sa.String(length=255), nullable=True),
        sa.Column('git_id', sa.BigInteger(), nullable=True),
        sa.Column('git_owner', sa.String(length=255), nullable=True),
        sa.Column('git_repository', sa.String(length=255), nullable=True),
        sa.Column('git_branch', sa.String(length=255), nullable=True),
        sa.Column('git_commit', sa.String(length=64), nullable=True),
        sa.Column('cpu', sa.Integer(), nullable=True),
        sa.Column('memory', sa.Integer(), nullable=True),
        sa.Column('gpu', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_preprocessings_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_preprocessings')),
    )
    op.create_index(op.f('ix_preprocessings_tenant_id'), 'preprocessings', ['tenant_id'], unique=False)
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preprocessing_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('input_data_id', sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f('ix_runs_preprocessing_id'), ['preprocessing_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_input_data_id'), ['input_data_id'], unique=False)
        batch_op.create_unique_constraint('uq_runs_preprocessing_input', ['preprocessing_id', 'input_data_id'])
    with op.batch_alter_table('data', schema=None) as batch_op:
        batch_op.add_column(sa.Column('produced_by_run_id', sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f('ix_data_produced_by_run_id'), ['produced_by_run_id'], unique=False)


def downgrade():
    with op.batch_alter_table('data', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_produced_by_run_id'))
        batch_op.drop_column('produced_by_run_id')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_constraint('uq_runs_preprocessing_input', type_='unique')
        batch_op.drop_index(batch_op.f('ix_runs_input_data_id'))
        batch_op.drop_index(batch_op.f('ix_runs_preprocessing_id'))
        batch_op.drop_column('input_data_id')
        batch_op.drop_column('preprocessing_id')
    op.drop_index(op.f('ix_preprocessings_tenant_id'), table_name='preprocessings')
    op.drop_table('preprocessings')
